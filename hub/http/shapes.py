"""Spotify Web API response shapes built from Legato's own types.

Kept apart from the routers so HTTP and the WebSocket answer with the very same
objects, and so clients written against Spotify's documentation (spotipy) find
the fields they expect.
"""

from __future__ import annotations

from typing import Any

from connect_protocol.messages import PlayerState, TrackRef
from connect_protocol.reducer import position_at
from connect_protocol.uris import kind_of, track_id_of
from hub.catalog.resolve import base62_id
from hub.fleet.groups import GroupService, GroupView
from hub.fleet.relay import Device, Relay


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "message": message}
    if reason:
        error["reason"] = reason
    return {"error": error}


def device_object(device: Device, *, active: bool) -> dict[str, Any]:
    return {
        "id": device.info.id,
        "is_active": active,
        "is_private_session": False,
        "is_restricted": not device.online,
        "name": device.info.name,
        "type": "Speaker",
        "volume_percent": device.state.volume_percent,
        "supports_volume": device.info.supports_volume,
        # Legato extensions (ignored by Spotify clients):
        "is_online": device.online,
        "model": device.info.model,
        "firmware": device.info.fw,
    }


def devices_listed(relay: Relay, groups: GroupService) -> list[dict[str, Any]]:
    """Every speaker, then every group as one device of ``type: "Group"``.

    While a group plays, the group is the active device, not its leader; a member
    says which group it is in (``group_id``, a Legato extension).
    """
    active = relay.active_device_id
    playing = groups.active_group()
    listed = []
    for device in sorted(relay.devices.values(), key=lambda d: d.info.name):
        entry = device_object(device, active=playing is None and device.info.id == active)
        group = groups.group_of(device.info.id)
        entry["group_id"] = group.id if group else None
        listed.append(entry)
    views = sorted(groups.views(), key=lambda v: v.group.name)
    return listed + [group_object(v) for v in views]


def group_object(view: GroupView) -> dict[str, Any]:
    """A group as ``/v1/me/player/devices`` lists it: one device, its volume the mean."""
    return {
        "id": view.group.id,
        "is_active": view.active,
        "is_private_session": False,
        "is_restricted": False,
        "name": view.group.name,
        "type": "Group",
        "volume_percent": view.volume_percent,
        "supports_volume": True,
        # Legato extensions (ignored by Spotify clients):
        "is_online": view.online,
        "model": "group",
        "firmware": "",
        "device_ids": list(view.group.device_ids),
        "leader_id": view.leader_id,
    }


def group_listing(view: GroupView) -> dict[str, Any]:
    """A group as ``/v1/groups`` shows it: its members in order, each live."""
    members = [
        {
            "id": device_id,
            "name": device.info.name if device else device_id,
            "is_online": bool(device and device.online),
            "is_leader": device_id == view.leader_id,
            "volume_percent": device.state.volume_percent if device else None,
            # "joined", "pending", or why the speaker could not join
            "membership": joined,
        }
        for device_id, device, joined in zip(
            view.group.device_ids, view.members, view.membership, strict=True
        )
    ]
    return {
        "id": view.group.id,
        "name": view.group.name,
        "device_ids": list(view.group.device_ids),
        "owner": {"id": view.group.owner_name, "type": "user"},
        "leader_id": view.leader_id,
        "is_active": view.active,
        "volume_percent": view.volume_percent,
        "members": members,
    }


def track_object(track: TrackRef, base_url: str) -> dict[str, Any]:
    track_id = track_id_of(track.uri)
    artists = [
        {
            "id": base62_id(f"artist:{name}"),
            "name": name,
            "type": "artist",
            "uri": f"legato:artist:{base62_id(f'artist:{name}')}",
            "href": f"{base_url}/v1/artists/{base62_id(f'artist:{name}')}",
            "external_urls": {},
        }
        for name in track.artists
    ]
    album_id = base62_id(f"album-name:{track.album}")
    return {
        "id": track_id,
        "name": track.name,
        "type": "track",
        "uri": track.uri,
        "href": f"{base_url}/v1/tracks/{track_id}",
        "duration_ms": track.duration_ms,
        "explicit": False,
        "is_local": False,
        "artists": artists,
        "album": {
            "id": album_id,
            "name": track.album,
            "type": "album",
            "uri": f"legato:album:{album_id}",
            "artists": artists,
            "images": [],
        },
        "external_urls": {},
    }


def player_object(device: Device, *, active: bool, now_ms: int, base_url: str) -> dict[str, Any]:
    """``GET /v1/me/player``'s CurrentlyPlayingContext for one device."""
    state: PlayerState = device.state
    context: dict[str, Any] | None = None
    if state.context_uri:
        kind = kind_of(state.context_uri) or "album"
        context = {
            "type": kind,
            "uri": state.context_uri,
            "href": None,
            "external_urls": {},
        }
    return {
        "device": device_object(device, active=active),
        "repeat_state": state.repeat.value,
        "shuffle_state": state.shuffle,
        "context": context,
        "timestamp": state.timestamp_ms,
        "progress_ms": position_at(state, now_ms) if state.current else None,
        "is_playing": state.is_playing,
        "item": track_object(state.current, base_url) if state.current else None,
        "currently_playing_type": "track" if state.current else "unknown",
        "actions": {"disallows": {} if state.current else {"pausing": True, "seeking": True}},
        # Legato extension: lets a remote reconcile optimistic updates.
        "revision": state.revision,
        "queue_length": len(state.queue),
    }
