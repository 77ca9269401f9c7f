"""The Gwyddion plug-in: Data Process > Plug-Ins > afm-sr > Enhance x2 / x4 / x8 (and Bicubic x4 beside them).

``afm-sr gwyddion install`` writes one small launcher per menu entry into Gwyddion's plug-in folder
(``install``); Gwyddion runs it as ``LAUNCHER register``, which the shell script answers without starting Python
(Gwyddion runs every plug-in's ``register`` at each start where no ``.rgi`` file answers for it), and as
``LAUNCHER run MODE DUMPFILE``, which runs ``plugin`` on the current channel in Gwyddion's dump format (``dump``).
"""
