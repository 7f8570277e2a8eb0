"""The music catalog and each listener's library.

Ids and URIs, resolving what to play, writing the catalog (ingest), read queries,
playlists, saved tracks and plays, search and recommendations.  Values in, values
out: no HTTP here (the Web API's shapes are ``hub.http``'s).
"""
