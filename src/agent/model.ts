import { createOpenAI } from "@ai-sdk/openai";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import type { Config } from "../config.ts";
import { fetchRetryingLostConnections } from "../resilience.ts";
import { OfflineModel, OFFLINE_MODEL_ID } from "./offline-model.ts";

export type ChatModel = { model: LanguageModelV4; id: string; offline: boolean };

/** The configured chat model: OpenAI (Responses or Chat Completions), any compatible server, or offline. `modelId`: the chat_model flag. */
export function chatModel(config: Config, modelId = config.CHAT_MODEL): ChatModel {
  if (config.offline) return { model: new OfflineModel(config.OFFLINE_CHUNK_DELAY_MS), id: OFFLINE_MODEL_ID, offline: true };
  // Keyless compatible servers (Ollama, llama.cpp) ignore the header but the client requires a value.
  const openai = createOpenAI({ apiKey: config.OPENAI_API_KEY ?? "unused", baseURL: config.OPENAI_BASE_URL, fetch: fetchRetryingLostConnections });
  const model = config.OPENAI_API === "chat" ? openai.chat(modelId) : openai.responses(modelId);
  return { model, id: modelId, offline: false };
}
