"""The application: the ``adamat`` command line, ``make demo``'s main job and its figures, the bokeh command."""
