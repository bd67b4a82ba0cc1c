"""`python -m mmrec` (also what `torchrun -m mmrec` runs)."""

from mmrec.cli.app import main

if __name__ == "__main__":
    main()
