"""LoRaWAN payload codecs (pure): civicair compact binary v1 and CayenneLPP."""
