"""Export of AdaMatting to deployment formats. Every artifact carries a manifest (common.manifest)."""
