import { createOpenAI } from "@ai-sdk/openai";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import type { Config } from "../config";
import { OfflineModel, OFFLINE_MODEL_ID } from "./offline-model";

export type ChatModel = { model: LanguageModelV4; id: string; offline: boolean };

/** The configured chat model: OpenAI (Responses or Chat Completions), any compatible server, or offline. */
export function chatModel(config: Config): ChatModel {
  if (config.offline) return { model: new OfflineModel(config.OFFLINE_CHUNK_DELAY_MS), id: OFFLINE_MODEL_ID, offline: true };
  // Keyless compatible servers (Ollama, llama.cpp) ignore the header but the client requires a value.
  const openai = createOpenAI({ apiKey: config.OPENAI_API_KEY ?? "unused", baseURL: config.OPENAI_BASE_URL });
  const model = config.OPENAI_API === "chat" ? openai.chat(config.CHAT_MODEL) : openai.responses(config.CHAT_MODEL);
  return { model, id: config.CHAT_MODEL, offline: false };
}
