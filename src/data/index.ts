// src/data: Arrow-backed datasets — Dataset / DatasetDict, loadDataset (local files, folders, Hub repos),
// streaming IterableDataset, parquet / JSON Lines / save_to_disk I/O. Depends on src/core and src/io only.
export { Dataset, concatenateDatasets } from './dataset.js';
export type { DatasetOptions, Merge, ShuffleOptions, TrainTestSplitOptions, Unbatched } from './dataset.js';
export { DatasetDict } from './dataset-dict.js';
export type { FilterOptions, MapOptions } from './dataset-map.js';
export { IterableDataset, IterableDatasetDict } from './iterable-dataset.js';
export type { IterableMapOptions } from './iterable-dataset.js';
export { loadDataset, loadFromDisk } from './load-dataset.js';
export type { LoadDatasetOptions } from './load-dataset.js';
export { hfHubDownload } from './hub-data.js';
export type { HfHubDownloadOptions } from './hub-data.js';
export type { DataFilesSpec } from './data-files.js';
export type { ReaderOptions } from './row-sources.js';
export type { ParquetCodec, ToParquetOptions } from './parquet-write.js';
export { featuresToSchema, schemaToFeatures } from './arrow-types.js';
export type { Batch, DatasetInfo, Feature, FeatureDict, Features, HubAccessOptions, Row, SequenceFeature, Value, ValueFeature } from './types.js';
