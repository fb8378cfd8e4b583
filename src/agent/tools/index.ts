import type { ToolSet } from "ai";
import { currentTime } from "./current-time";

/** The tools every thread agent offers its model. */
export function agentTools(): ToolSet {
  return { current_time: currentTime };
}
