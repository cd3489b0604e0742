"""Speech engines behind interfaces: speech-to-text, text-to-speech and voice activity detection."""
