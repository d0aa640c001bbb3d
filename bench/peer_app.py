"""The peer: Gradio's own `gr.load_chat` on the same stand-in API, with its defaults.

python bench/peer_app.py BASE_URL PORT
"""

import sys

import gradio as gr

if __name__ == "__main__":
    base_url, port = sys.argv[1], int(sys.argv[2])
    gr.load_chat(base_url, model="abab6.5s-chat", token="bench").launch(server_port=port)
