"""`python -m netfly_batch` is the `netfly-batch` command."""

from .cli import main

main()
