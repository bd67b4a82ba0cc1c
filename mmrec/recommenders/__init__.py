"""mmrec.recommenders"""
