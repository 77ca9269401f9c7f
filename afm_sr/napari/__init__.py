"""The napari plugin (npe2, see napari.yaml): reader, sample data and the afm-sr docks.

napari imports it through the ``napari.manifest`` entry point; ``import afm_sr`` and the ``afm-sr`` command
never do, so napari stays an optional extra (``pip install -e ".[napari]"``).
"""
