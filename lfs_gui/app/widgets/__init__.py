"""The app's panels (Qt widgets); each writes user intent into the state model and redraws on its events."""
