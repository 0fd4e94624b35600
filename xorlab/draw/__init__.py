"""Drawing the plots of a run on matplotlib ``Figure`` objects with the Agg canvas directly (no
pyplot, no global state), rendered to bytes in memory. The rooms, each importing only those above
it:

- ``figure``: a figure's constants, its title, its PNG bytes, the step axis and log y axis;
- ``layout``: one row of plots under a title, placed without constrained layout;
- ``boundary``: P(class 1) on a grid, drawn as an image with the 0.5 contour and the points;
- ``curves``: loss and accuracy per step, legends placed off the curves;
- ``panel``: the tutorial's figure, accuracy | decision boundary | loss.

``xorlab.plots`` renders a run's files from these, and ``xorlab.gif`` animates the panel.
"""
