"""One router per route group; each is thin: validate, call a service, shape the answer."""
