// ts-finetune: the public API. Everything users import comes from here (see ../shared/API.md).
export * from './core/index.js';
