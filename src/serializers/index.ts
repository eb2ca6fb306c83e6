export { createJsonSerializer, type JsonSerializerOptions, jsonSerializer } from "./json.js";
export { MAX_DEPTH } from "./limits.js";
export { createMsgpackSerializer, type MsgpackSerializerOptions, msgpackSerializer } from "./msgpack.js";
export { defaultSerializerName, getSerializer, registerSerializer } from "./registry.js";
export type { Serializer, SizeLimits } from "./serializer.js";
export {
  createTagRegistry,
  defaultTagRegistry,
  type JsonValue,
  registerDecoder,
  registerEncoder,
  TagRegistry,
} from "./tags.js";
