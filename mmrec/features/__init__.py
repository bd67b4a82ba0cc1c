"""mmrec.features"""
