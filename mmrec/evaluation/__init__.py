"""mmrec.evaluation"""
