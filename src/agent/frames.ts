// Moved: the message contract is src/messages.ts, the frame allow-list ./frame-policy.ts.
export { MAX_MESSAGE_CHARS, messageText } from "../messages.ts";
