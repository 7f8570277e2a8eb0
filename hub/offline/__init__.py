"""Offline downloads and licences: what listeners asked speakers to keep, the licences
that let a speaker decrypt it, the rules for both, and the service that ties them."""
