"""Local, offline providers: Silero VAD, faster-whisper STT and Piper TTS.

Import the module you need (``voxdialog.providers.local.whisper_stt``); this package imports
nothing itself, so loading one provider never pulls in the other engines.
"""
