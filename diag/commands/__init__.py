"""One module per `meshprobe` command; each exposes `register(app)`."""
