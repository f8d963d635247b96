"""The catalogue: collection facts, public faceted search and the researchers' thresholded count query."""
