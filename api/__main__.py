"""`python -m api ...` runs the kernelwright CLI (for machines where the console script is not installed)."""

from api.cli import main

main()
