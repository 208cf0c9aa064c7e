"""Gateway: transports (MQTT, HTTP push), network-server formats, payload codecs."""
