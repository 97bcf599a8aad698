"""A FunctionGraph Python function: greets, counts warm invocations, uses the context."""

import json

invocations = 0
greeting = "Hello"


def initializer(context):
    """Runs once per instance, before the first invocation."""
    global greeting
    greeting = context.getUserData("GREETING", "Hello")


def handler(event, context):
    global invocations
    invocations += 1
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    context.getLogger().info("greeting %s", name)
    return {
        "statusCode": 200,
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({
            "message": "%s, %s!" % (greeting, name),
            "invocations": invocations,
            "function": context.getFunctionName(),
            "request_id": context.getRequestID(),
        }),
    }
