"""mmrec.checkpoints"""
