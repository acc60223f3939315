"""Quality of any predictor: the Composition-1k protocol on composited sets and real photos, and the accuracy of
every exported artifact against the PyTorch FP32 model."""
