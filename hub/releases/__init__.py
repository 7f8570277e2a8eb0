"""The hub's side of signed updates: releases made from Legato wheels and signed with
the operator's release key, rolled out to a share of the fleet or to named speakers,
offered to each speaker in waves, halted by hand or by themselves when too many fail.

``policy`` (pure: who is offered what, when to halt), ``status`` (pure: each speaker's
progress as the operator reads it), ``store`` (the tables), ``adding`` (wheel to
signed bundle), ``service`` (the operations), ``recorder`` (speakers' reports).
"""
