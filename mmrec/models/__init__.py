"""mmrec.models"""
