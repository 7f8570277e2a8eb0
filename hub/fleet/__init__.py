"""The speakers: the relay to them over MQTT, the player service that commands them,
what they report (events, plays), their provisioning and broker, and fleet stats."""
