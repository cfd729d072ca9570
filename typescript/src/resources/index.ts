export {
  Lipsync,
  type LipsyncGenerate,
  type LipsyncGenerateParams,
  type LipsyncGenerateWithMediaParams,
  type ModelName,
  type SyncMode,
} from './lipsync/lipsync.js';
export {
  Requests,
  type LipsyncRequest,
  type OutputSync,
  type Pagination,
  type RequestListParams,
  type RequestListResponse,
  type RequestStatus,
  type WaitOptions,
} from './lipsync/requests.js';
