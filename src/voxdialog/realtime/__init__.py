"""The OpenAI Realtime wire protocol (GA): session config, event rendering, the WebSocket."""
