"""The Gwyddion plug-in: Data Process > Plug-Ins > afm-sr > Enhance x2 / x4 / x8 (and Bicubic x4 beside them).

``afm-sr gwyddion install`` writes one small launcher per menu entry into Gwyddion's plug-in folder
(``install``); Gwyddion runs it as ``LAUNCHER register`` and ``LAUNCHER run MODE DUMPFILE`` (``plugin``), handing
the current channel over in its dump format (``dump``). Registration imports neither NumPy nor torch: Gwyddion
runs every plug-in's ``register`` at each start where no ``.rgi`` file answers for it.
"""
