"""`python -m halo ...` runs the `halo` command."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="halo")
