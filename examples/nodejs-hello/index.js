// A FunctionGraph Node.js function with an async handler.
'use strict';

let invocations = 0;

exports.handler = async (event, context) => {
  invocations += 1;
  const name = (event && event.name) || 'world';
  context.getLogger().info(`greeting ${name}`);
  return {
    statusCode: 200,
    isBase64Encoded: false,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      message: `Hello, ${name}!`,
      invocations,
      function: context.getFunctionName(),
      remaining_ms: context.getRemainingTimeInMilliSeconds(),
    }),
  };
};
