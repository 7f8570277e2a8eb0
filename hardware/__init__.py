"""Board profiles, physical controls, front-panel firmware and provisioning."""
