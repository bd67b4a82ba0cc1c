"""mmrec.data"""
