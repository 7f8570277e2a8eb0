"""The hub's own web apps: the listener's ``/remote`` and the operator's ``/dashboard``.

Server-rendered Jinja2 pages with small plain JavaScript, no CDN and no build
step: everything a browser loads is under ``static/`` in this package.
"""
