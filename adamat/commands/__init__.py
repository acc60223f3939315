"""One module per ``adamat`` command: ``add_arguments(parser)`` declares its options and sets ``func``."""
