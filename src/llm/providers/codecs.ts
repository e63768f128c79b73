import type { WireFormat } from '../route.ts';
import { anthropicMessages } from './anthropic-messages.ts';
import { openAiChat } from './openai-chat.ts';
import type { WireFormatCodec } from './stream-event.ts';

export const codecs: Readonly<Record<WireFormat, WireFormatCodec>> = {
  'openai-chat': openAiChat,
  'anthropic-messages': anthropicMessages,
};
