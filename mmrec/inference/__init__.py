"""mmrec.inference"""
