"""mmrec.training"""
