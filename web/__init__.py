"""web: HTTP beside the Gradio UI (ASGI middleware and routes). Imports starlette, never gradio."""
