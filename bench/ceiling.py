"""The ceiling: the smallest Flask app that answers with a small JSON body.

Served by the same gunicorn settings as the API; every endpoint's throughput is
compared with this one's, measured in the same run.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def ceiling():
    return jsonify(status="ok", database="ok")
