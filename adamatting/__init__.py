"""AdaMatting: disentangled image matting (Cai et al., ICCV 2019) for phone portrait bokeh."""

__version__ = "0.1.0"
