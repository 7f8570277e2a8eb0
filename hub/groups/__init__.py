"""Multiroom groups: several speakers that play as one.

``rules`` holds the pure decisions (who leads, the group's volume, which members a
group may have); ``store`` keeps groups in hub.db.  Telling speakers they joined or
left, and routing a group's player commands to its leader, is the fleet's
(:mod:`hub.fleet.groups`), which talks to speakers.
"""
