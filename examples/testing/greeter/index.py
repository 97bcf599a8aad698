def handler(event, context):
    greeting = context.getUserData("GREETING", "Hi")
    return {"message": "%s, %s!" % (greeting, event.get("name", "world"))}
