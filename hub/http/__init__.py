"""The hub's HTTP face: the app factory, routers per resource, shared dependencies,
the Spotify Web API's response models and shapes, rate limits and request validation."""
