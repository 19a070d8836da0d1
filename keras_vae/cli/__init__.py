"""The command line, `keras-vae` (`commands`, its arguments in `parser`),
and what its failures mean to the user: messages and exit codes (`failures`)."""

from keras_vae.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
